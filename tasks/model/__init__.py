"""Typed models of the upstream file formats: recipes (cookbook) and installer configs."""
