"""The model-type sweep: every model type in transformers' auto mappings, built small from its config,
run eagerly, then through `torch.compile(model, backend="kiln")`, compared with eager.

    python -m tests.models [--only NAME...] [--jobs J] [--json FILE]

zoo.py lists the model types, shrink.py makes their configs small, inputs.py their inputs, build.py
finds a (config, inputs) that runs eagerly, check.py compiles and compares one model, worker.py
serves models to the fuzzer's runner (tests/fuzz/runner.py: a crash or hang is DEAD), sweep.py is
the command line; tests/e2e/test_model_sweep.py is CI's sample.
"""
