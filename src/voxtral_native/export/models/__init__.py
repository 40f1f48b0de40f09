"""Plain nn.Module definitions of the Voxtral models; module names follow Mistral's
checkpoint keys so a state dict loads without renaming."""
