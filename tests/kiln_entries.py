"""The two ways a user compiles with Kiln, by name, for tests that run a case through both."""
import torch

import kiln

ENTRY_POINTS = {"kiln.compile": lambda fn: kiln.compile(fn),
                "torch.compile": lambda fn: torch.compile(fn, backend="kiln")}
