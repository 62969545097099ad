"""sr_core/datasets"""
