"""Front ends: the command layer and its grammar, magics, the command line, the runner, widgets, manifests, imports."""
