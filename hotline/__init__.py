"""The composition root: wires every package into the running product (Product) and lists every table."""
