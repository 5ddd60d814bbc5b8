"""Checks of generated resume functions and break entries against real CPython frames (torch-free)."""
