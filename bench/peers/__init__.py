"""Other tools that the benchmarks measure beside ours, in the same run and with the same load."""
