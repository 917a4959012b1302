// Hot loops stackalloc scratch buffers that are fully written before being read.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
