"""The research compendium's glue, apart from the solver library.

``data`` (dataset loaders), ``baselines`` (networks trained by backprop, the penalty
method, ADMM with per-epoch records), ``compare`` (the command line that compares them),
``report`` (LaTeX tables, macros and the notebooks' data hook), ``plots`` (figures),
``conditioning`` (condition numbers of the u-step systems), ``hlo`` (the collectives
of a compiled program, for the mesh benchmark and tests), ``problems`` (the benchmark
problems by name, every data set prepared one way) and ``bench`` (the benchmark scripts'
harness and the paper's tables from their results). They use the core
(``admmnn``); the core never imports them. Import each module by name, e.g.
``from admmnn.experiments import plots, report``.
"""
