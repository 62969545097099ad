"""sr_core/inference"""
