"""The openEO layer: UDFs (sr_udf.py, misr_udf.py), local back-end emulator, process graphs, archives."""
