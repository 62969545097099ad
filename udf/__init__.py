"""The openEO layer: UDFs (sr_udf.py, misr_udf.py), their context contract, the local back-end emulator, process
graphs, dependency archives, the demo."""
