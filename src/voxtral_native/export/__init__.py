"""The PyTorch side of voxtral-native (the ``[export]`` extra): model definitions,
Mistral checkpoint loading, quantization and export to ExecuTorch programs.

Nothing in this package is imported by inference code.
"""
