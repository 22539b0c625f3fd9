"""The phone menu: tree model, loader and validator, pure engine, runner and prompts."""
