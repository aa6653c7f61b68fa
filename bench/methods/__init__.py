"""The copy methods the benchmark compares that are not a single existing command."""
