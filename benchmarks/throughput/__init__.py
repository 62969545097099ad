"""benchmarks/throughput"""
