"""AdamW without torch.optim's compiler imports.

Every ``torch.optim.Optimizer`` imports ``torch._dynamo`` when it is built and at each step (for
``torch.compile``'s sake), and that pulls in sympy and, where installed, triton: in a CPU training
process here it added 156 MB of resident memory (508 -> 664 MB from ``import torch`` to
``import torch._dynamo``; torch 2.14.1, triton 3.8.0), an eighth of what training needs and paid
again by every DDP rank. :class:`AdamW` keeps the parameter groups and their state itself and
updates with torch's own functional Adam (``torch.optim.adam.adam`` with decoupled weight decay,
which is what ``torch.optim.AdamW`` calls), so the arithmetic is torch's; its ``state_dict`` has
``torch.optim.AdamW``'s layout, so checkpoints written by either load into the other.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam

from .errors import HandwriteError


class AdamW:
    """The subset of ``torch.optim.AdamW`` that training uses: ``param_groups`` (each with its own
    ``lr`` and ``weight_decay``), ``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``."""

    def __init__(self, groups: Iterable[dict], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.param_groups = [
            {
                "params": list(g["params"]),
                "lr": lr,
                "betas": tuple(betas),
                "eps": eps,
                "weight_decay": g["weight_decay"],
            }
            for g in groups
        ]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self) -> None:
        """Drops the gradients (``set_to_none`` in torch's terms: no zero tensors kept)."""
        for p in self._params():
            p.grad = None

    def _state_of(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.state.get(p)
        if s is None:
            s = self.state[p] = {
                "step": torch.tensor(0.0),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
        return s

    @torch.no_grad()
    def step(self) -> None:
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state_of(p) for p in params]
            beta1, beta2 = g["betas"]
            adam(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                [s["step"] for s in states],
                decoupled_weight_decay=True,
                amsgrad=False,
                beta1=beta1,
                beta2=beta2,
                lr=g["lr"],
                weight_decay=g["weight_decay"],
                eps=g["eps"],
                maximize=False,
            )

    def state_dict(self) -> dict:
        index = {p: i for i, p in enumerate(self._params())}
        groups, start = [], 0
        for g in self.param_groups:
            settings = {k: v for k, v in g.items() if k != "params"}
            # The flags torch.optim.AdamW writes, so that it can load this state too.
            flags = dict(
                amsgrad=False, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None
            )
            groups.append(
                {
                    **settings,
                    **flags,
                    "decoupled_weight_decay": True,
                    "params": list(range(start, start + len(g["params"]))),
                }
            )
            start += len(g["params"])
        return {"state": {index[p]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, saved: dict) -> None:
        """Loads a state from this class or ``torch.optim.AdamW`` over the same parameter groups."""
        groups = saved["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise HandwriteError("the saved optimizer state is for other parameters than this model's")
        for mine, theirs in zip(self.param_groups, groups):
            mine.update({k: theirs[k] for k in ("lr", "betas", "eps", "weight_decay")})
            mine["betas"] = tuple(mine["betas"])
        params = self._params()
        self.state = {}
        for i, s in saved["state"].items():
            p = params[int(i)]
            self.state[p] = {
                "step": s["step"].float().cpu(),
                "exp_avg": s["exp_avg"].to(p.device, p.dtype),
                "exp_avg_sq": s["exp_avg_sq"].to(p.device, p.dtype),
            }
