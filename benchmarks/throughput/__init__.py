"""Throughput benchmark of the model packages: ``python -m benchmarks.throughput`` (benchmarks/README.md has the
full description).

What is measured
----------------
1. **Bare forward pass** (:mod:`.forward`) of every model x engine (``torch`` eager, ``onnx`` = ONNX Runtime,
   ``compile`` = ``torch.compile``; :mod:`.runners`) x device (CPU; CUDA when present) x precision (fp32;
   fp16/bf16 autocast on CUDA) x threads x tile size x batch. A *tile* of size ``T`` is a ``(batch, C, T, T)``
   float32 reflectance input (the tile core plus the model's margin ``receptive_field // 2`` on every side) and a
   ``(batch, C_out, s*T, s*T)`` output. Timing (:mod:`.timing`): :func:`time.perf_counter` around each call
   (CUDA: ``torch.cuda.synchronize()`` before and after; host<->device copies of input and output included),
   ``warmup`` calls first (the first one, reported as ``first_call_s``, includes ``torch.compile``'s
   compilation), then ``repeats`` timed calls: median, quartiles, min and max.
2. **Derived figures**: output megapixels per second (5 m pixels, all output bands, whole tile), seconds per
   tile, and the extrapolated time of a full Sentinel-2 tile (10980 x 10980 10 m pixels, 10 bands, x2):
   ``ceil(10980 / (T - 2*margin))**2`` tiles, i.e. the margin overlap of the seamless tiling is paid, as in
   production. Achieved GFLOP/s = convolution FLOPs of the ONNX graph (:mod:`.flops`) / seconds, against the
   peak of the cores used (:mod:`.system`).
3. **Whole path** (:mod:`.whole_path`): ``udf/sr_udf.py`` run by the local back-end emulator on a NetCDF cube
   read from disk, writing a tiled, compressed GeoTIFF; and ``s2sr superres`` from a scene folder to a GeoTIFF.
   Each against the bare forward pass over the same scene (the model as shipped, on tiles with the same core and
   the model's margin). Overhead = ``whole / bare - 1``, split into the steps of the path.
4. **Peak RSS at two scene sizes** (:mod:`.rss`), each in a fresh child process that reports its own ``VmHWM``
   at exit, extrapolated linearly to a full tile.

Modules: :mod:`.inputs` (synthetic scenes from the bundled sample), :mod:`.report` (targets, Markdown),
:mod:`.suite` (every part for every model, JSON + Markdown), :mod:`.cli` (the options), :mod:`.parsing`
(list options), :mod:`.summarize` (one table over several invocations).
"""
