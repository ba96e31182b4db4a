"""torch.compile: a training step as a function of plain tensors, compiled once, one thread.

The parameters are plain tensors (a flat list ``[W_1, b_1, W_2, b_2, ...]``,
weights ``(n_in, n_out)``, no ``nn.Module``); one function does the whole
step, forward pass, gradients and update, in place, and is compiled with
``torch.compile(fullgraph=True, dynamic=False)``. Gradients are written by
hand (``GRADIENTS = "by hand"``) or taken by ``torch.func.grad`` inside the
compiled function (``"torch.func.grad"``): the same speed, within the noise,
on every workload; by hand compiles faster. The rows are split into batches
once, beforehand; the Python loop over them remains, and each call of the
compiled step costs some 40 us of dynamo's and AOTAutograd's own wrappers
on this machine, which is what limits it per sample. Compiling happens when
the runner is made, on copies of the parameters, so the timed epochs run
compiled code only. The caller sets ``torch.set_num_threads(1)``.
"""

import torch
import torch._dynamo
import torch._inductor.config

from .torch_peer import tensors

# Every workload and dtype compiles the same step function anew: more than
# torch's default of 8 versions of one function.
torch._dynamo.config.recompile_limit = 64
# Compile in this process: a pool of compiling processes takes longer to
# start (2-3 s) than it saves on these small graphs. (Compiling only.)
torch._inductor.config.compile_threads = 1

GRADIENTS = "by hand"


def train_runner(spec, X, Y, start):
    if spec.optimizer not in ("sgd", "adam"):
        raise NotImplementedError(f"torch.compile peer: no {spec.optimizer} optimizer")
    params = [tensor for pair in tensors(start) for tensor in pair]
    state = _initial_state(spec, params)
    step = torch.compile(_step(spec), fullgraph=True, dynamic=False)
    batches = list(zip(torch.from_numpy(X).split(spec.batch_size),
                       torch.from_numpy(Y).split(spec.batch_size)))
    # Compile for each batch shape (a last, partial batch is a second one),
    # stepping on copies of the state.
    for x, y in {tuple(x.shape): (x, y) for x, y in batches}.values():
        step([tensor.clone() for tensor in state], x, y)

    def epoch():
        for x, y in batches:
            step(state, x, y)
        return list(zip(params[0::2], params[1::2]))
    return epoch


def predict_runner(X, start):
    params = [tensor for pair in tensors(start) for tensor in pair]
    forward = torch.compile(lambda params, X: _forward(params, X, "softmax")[-1],
                            fullgraph=True, dynamic=False)
    X = torch.from_numpy(X)
    with torch.inference_mode():
        forward(params, X)

    def run():
        with torch.inference_mode():
            return forward(params, X)
    return run


# ---------------------------------------------------------------- the network

def _forward(params, x, kind):
    """[x, a_1, ..., a_L]: sigmoid layers, or relu layers and a softmax output."""
    acts = [x]
    n_layers = len(params) // 2
    for layer in range(n_layers):
        z = torch.addmm(params[2 * layer + 1], acts[-1], params[2 * layer])
        if kind == "sigmoid":
            acts.append(torch.sigmoid(z))
        elif layer < n_layers - 1:
            acts.append(torch.relu(z))
        else:
            acts.append(torch.softmax(z, dim=1))
    return acts


def _loss(params, x, y, kind):
    """MSE (mean over rows and outputs) or cross-entropy (mean over rows)."""
    if kind == "sigmoid":
        return torch.mean(torch.square(_forward(params, x, kind)[-1] - y))
    z = x
    for layer in range(len(params) // 2 - 1):
        z = torch.relu(torch.addmm(params[2 * layer + 1], z, params[2 * layer]))
    logits = torch.addmm(params[-1], z, params[-2])
    return -torch.sum(y * torch.log_softmax(logits, dim=1)) / x.shape[0]


def _gradients_by_hand(params, x, y, kind):
    """[dLoss/dW_1, dLoss/db_1, ...] by backpropagation."""
    acts = _forward(params, x, kind)
    a = acts[-1]
    rows = x.shape[0]
    if kind == "sigmoid":
        delta = (a - y) * (2 / (rows * a.shape[1])) * (a * (1 - a))
    else:
        delta = (a - y) / rows
    grads = []
    for layer in range(len(params) // 2 - 1, -1, -1):
        a_prev = acts[layer]
        grads += [delta.sum(dim=0), a_prev.T @ delta]
        if layer > 0:
            back = delta @ params[2 * layer].T
            delta = back * (a_prev * (1 - a_prev)) if kind == "sigmoid" else back * (a_prev > 0)
    return grads[::-1]


def _gradients(params, x, y, kind):
    if GRADIENTS == "torch.func.grad":
        return torch.func.grad(_loss)(params, x, y, kind)
    return _gradients_by_hand(params, x, y, kind)


# ---------------------------------------------------------------- optimizers

def _initial_state(spec, params):
    """[params..., first moments..., second moments..., step count] (SGD: the params)."""
    if spec.optimizer == "sgd":
        return params
    zeros = [torch.zeros_like(p) for p in params] + [torch.zeros_like(p) for p in params]
    # (t has one element, not none: torch.compile 2.13 drops an in-place
    # update of a 0-d input tensor, and Adam's t would stay 0.)
    return params + zeros + [torch.zeros(1, dtype=torch.float64)]


def _step(spec):
    """The optimizer step on one batch (x, y), updating ``state`` in place.

    (In place rather than returning new tensors: as fast on the small
    networks, 10-25 % faster on the mini-batches and with Adam.)
    """
    kind, learning_rate = spec.kind, spec.learning_rate
    if spec.optimizer == "sgd":
        def sgd(params, x, y):
            for p, g in zip(params, _gradients(params, x, y, kind)):
                p.sub_(learning_rate * g)
        return sgd
    beta1, beta2 = spec.betas
    eps = spec.eps

    def adam(state, x, y):
        """torch.optim.Adam: moments m and v, bias-corrected by the step count t."""
        n = (len(state) - 1) // 3
        params, first, second, t = state[:n], state[n:2 * n], state[2 * n:3 * n], state[-1]
        t.add_(1)
        # The corrections in double, then rounded, as torch.optim.Adam computes them.
        step_size = (learning_rate / (1 - beta1 ** t)).to(params[0].dtype)
        correction2 = torch.sqrt(1 - beta2 ** t).to(params[0].dtype)
        for p, m, v, g in zip(params, first, second, _gradients(params, x, y, kind)):
            m.add_((1 - beta1) * (g - m))
            v.mul_(beta2).add_((1 - beta2) * g * g)
            p.sub_(step_size * (m / (torch.sqrt(v) / correction2 + eps)))
    return adam
