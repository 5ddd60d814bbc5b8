"""Grad mode: torch.no_grad / enable_grad / set_grad_enabled blocks, calls and decorators.

Results must have eager's requires_grad, and the function must leave the global grad mode
exactly where eager leaves it."""
import torch

from . import Case, args, t

CATEGORY = "grad mode"


def no_grad_block(x, w):
    with torch.no_grad():
        inside = x * w
    return inside, x * w


def enable_grad_inside_no_grad(x, w):
    with torch.no_grad():
        a = x * w
        with torch.enable_grad():
            b = x * w
        c = x + w
    return a, b, c


def set_grad_enabled_block(x, w):
    with torch.set_grad_enabled(False):
        a = x * w
    return a, x * w


def set_grad_enabled_true_inside_no_grad(x, w):
    with torch.no_grad():
        with torch.set_grad_enabled(True):
            a = x * w
    return a


def set_grad_enabled_from_argument(x, w, train):
    with torch.set_grad_enabled(train):
        return x * w


def set_grad_enabled_call_and_restore(x, w):
    torch.set_grad_enabled(False)
    a = x * w
    torch.set_grad_enabled(True)
    return a, x * w


def set_grad_enabled_call_left_off(x, w):
    torch.set_grad_enabled(False)
    return x * w


def private_set_grad_enabled(x, w):
    torch._C._set_grad_enabled(False)
    a = x * w
    torch._C._set_grad_enabled(True)
    return a


def return_inside_no_grad(x, w):
    with torch.no_grad():
        return x * w


def enter_value_is_none(x):
    with torch.no_grad() as entered:
        return entered, x * 2


def is_grad_enabled_inside(x):
    with torch.no_grad():
        flag = torch.is_grad_enabled()
    return x * 2 if flag else x * 3, torch.is_grad_enabled()


def context_object_in_a_local(x, w):
    context = torch.no_grad()
    with context:
        a = x * w
    return a


def nested_same_mode(x, w):
    with torch.no_grad():
        with torch.no_grad():
            a = x * w
        b = x * w
    return a, b


def inplace_on_parameter_under_no_grad(x, w):
    with torch.no_grad():
        w.add_(x.sum())
    return w * 2


def no_grad_around_inplace_and_effects(x, w, lst):
    with torch.no_grad():
        y = x * w
        lst.append(y)
    return y.requires_grad


@torch.no_grad()
def decorated_no_grad(x, w):
    return x * w


@torch.no_grad
def decorated_no_grad_without_call(x, w):
    return x * w


@torch.enable_grad()
def helper_enable_grad(x, w):
    return x * w


def calls_enable_grad_helper_inside_no_grad(x, w):
    with torch.no_grad():
        return helper_enable_grad(x, w), x * w


@torch.no_grad()
def helper_no_grad(x, w):
    return x * w


def calls_no_grad_helper(x, w):
    return helper_no_grad(x, w), x * w


@torch.set_grad_enabled(False)
def helper_set_grad_disabled(x, w):
    return x * w


def calls_set_grad_enabled_helper(x, w):
    return helper_set_grad_disabled(x, w) + 1


def inference_mode_block(x):
    with torch.inference_mode():
        return x * 2


class Ema(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.register_buffer("average", torch.zeros(4, 4))

    def forward(self, x):
        y = self.linear(x)
        with torch.no_grad():
            self.average.mul_(0.9).add_(self.linear.weight * 0.1)
        return y


class NoGradForward(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    @torch.no_grad()
    def forward(self, x):
        return self.linear(x).relu()


class DecoratedMethod(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    @torch.no_grad()
    def frozen(self, x):
        return self.linear(x)

    def forward(self, x):
        return self.frozen(x), self.linear(x)


W = t(4, requires_grad=True, grows=False)

CASES = [
    Case(no_grad_block, args(t(3, 4), W)),
    Case(no_grad_block, args(t(3, 4), W), backend="kiln", name="no_grad_block_kiln_backend"),
    Case(return_inside_no_grad, args(t(3, 4), t(4, grows=False)), backend="kiln", name="no_grad_kiln_backend_compiles"),
    Case(enable_grad_inside_no_grad, args(t(3, 4), W)),
    Case(set_grad_enabled_block, args(t(3, 4), W)),
    Case(set_grad_enabled_true_inside_no_grad, args(t(3, 4), W)),
    Case(set_grad_enabled_from_argument, args(t(3, 4), W, False), name="set_grad_enabled_from_argument_false"),
    Case(set_grad_enabled_from_argument, args(t(3, 4), W, True), name="set_grad_enabled_from_argument_true"),
    Case(set_grad_enabled_call_and_restore, args(t(3, 4), W)),
    Case(set_grad_enabled_call_left_off, args(t(3, 4), W)),
    Case(private_set_grad_enabled, args(t(3, 4), W)),
    Case(return_inside_no_grad, args(t(3, 4), W)),
    Case(enter_value_is_none, args(t(3, 4))),
    Case(is_grad_enabled_inside, args(t(3, 4))),
    Case(context_object_in_a_local, args(t(3, 4), W)),
    Case(nested_same_mode, args(t(3, 4), W)),
    Case(inplace_on_parameter_under_no_grad, args(t(3, 4), W)),
    Case(no_grad_around_inplace_and_effects, args(t(3, 4), W, [])),
    Case(decorated_no_grad, args(t(3, 4), W)),
    Case(decorated_no_grad_without_call, args(t(3, 4), W)),
    Case(calls_enable_grad_helper_inside_no_grad, args(t(3, 4), W)),
    Case(calls_no_grad_helper, args(t(3, 4), W)),
    Case(calls_set_grad_enabled_helper, args(t(3, 4), W)),
    Case(inference_mode_block, args(t(3, 4)), graphs=(0, 0, 0), breaks=1,
         fallback="a `with` block on a context manager capture does not trace"),  # breaks at its construction
    Case(None, args(t(3, 4)), module=Ema, name="ema_buffer_update_under_no_grad"),
    Case(None, args(t(3, 4)), module=NoGradForward, name="module_forward_decorated_no_grad"),
    Case(None, args(t(3, 4)), module=DecoratedMethod, name="module_calls_decorated_method"),
]
for _case in CASES:
    _case.category = CATEGORY
