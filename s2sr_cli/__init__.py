"""s2sr_cli"""
