"""Tools of the lab, not the product: the GPU round, golden data, profiling and benchmark scripts."""
