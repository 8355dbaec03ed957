"""Training room: stem bank, pair sampling, config, the training loop, the distillation teacher
and training plots (docs/design.md, Method)."""
