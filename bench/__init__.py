"""Measurements anyone can reproduce: the billing benchmark against bare Temporal (`run_bench`),
the chaos run (`run_chaos`), the multi-process worker harness both use (`workers`), and the API's
finance queries over a group's books at scale (`run_finance`)."""
