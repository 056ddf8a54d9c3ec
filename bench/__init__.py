"""Measurements anyone can reproduce: the billing benchmark against bare Temporal (`run_bench`),
the chaos run (`run_chaos`), and the multi-process worker harness both use (`workers`)."""
