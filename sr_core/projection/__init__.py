"""sr_core/projection"""
