"""PyTorch eager: ``nn.Sequential``, ``torch.optim`` and ``loss.backward()``, one thread.

The way most people train an MLP with PyTorch: the model, the loss and the
optimizer of the workload (``torch.nn.MSELoss``, ``CrossEntropyLoss`` with
probability targets, ``torch.optim.SGD`` / ``Adam``), a Python loop over
the batches, split once beforehand. The caller sets
``torch.set_num_threads(1)``.
"""

import torch

# The optimizers' implementation, as torch.optim's ``foreach``/``fused``
# arguments take it; None is torch's default (a loop over the parameters on
# the CPU). ``fused=True`` runs one kernel per parameter for the whole update.
IMPLEMENTATION = {"fused": True}


def tensors(start):
    """The start parameters as tensors (copies), weights still (n_in, n_out)."""
    return [(torch.from_numpy(W.copy()), torch.from_numpy(b.copy())) for W, b in start]


def model(start, kind):
    """nn.Sequential of the network, its weights copied from ``start``."""
    layers = []
    for layer, (W, b) in enumerate(tensors(start)):
        linear = torch.nn.Linear(*W.shape, dtype=W.dtype)
        with torch.no_grad():
            linear.weight.copy_(W.T)
            linear.bias.copy_(b)
        layers.append(linear)
        if kind == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        elif layer < len(start) - 1:
            layers.append(torch.nn.ReLU())
        # (the softmax output is in CrossEntropyLoss, which takes the logits)
    return torch.nn.Sequential(*layers)


def optimizer(spec, parameters):
    if spec.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=spec.learning_rate, betas=spec.betas,
                                eps=spec.eps, **IMPLEMENTATION)
    return torch.optim.SGD(parameters, lr=spec.learning_rate, momentum=spec.momentum,
                           **IMPLEMENTATION)


def train_runner(spec, X, Y, start):
    net = model(start, spec.kind)
    steps = optimizer(spec, net.parameters())
    loss_function = torch.nn.MSELoss() if spec.kind == "sigmoid" else torch.nn.CrossEntropyLoss()
    batches = list(zip(torch.from_numpy(X).split(spec.batch_size),
                       torch.from_numpy(Y).split(spec.batch_size)))
    linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]

    def epoch():
        for x, y in batches:
            steps.zero_grad(set_to_none=True)
            loss_function(net(x), y).backward()
            steps.step()
        return [(linear.weight.detach().T, linear.bias.detach()) for linear in linears]
    return epoch


def predict_runner(X, start):
    net = torch.nn.Sequential(model(start, "softmax"), torch.nn.Softmax(dim=1))
    X = torch.from_numpy(X)

    def run():
        with torch.inference_mode():
            return net(X)
    return run
