"""The parts of ``tinytorch_nn.io``: how a checkpoint is written and read.

- ``errors``: ``CheckpointError`` and the names an entry may have;
- ``layout``: nested state (optimizer, scheduler, ...) flattened into named arrays and back;
- ``safetensors_file``: the safetensors header checked as untrusted input, the arrays read;
- ``npz_file``: the ``.npz`` checkpoints of earlier versions, still read.
"""
