"""A deliberately literal Chromoformer forward written from docs/original.md §1, for tests only.

It uses the original's dense boolean masks (True = blocked), ``masked_fill(-1e9)``,
computes every query row and every dummy pCRE, and reads weights by their
state_dict names. The package's optimised model must agree with it.
"""

from __future__ import annotations

import math

import torch


def _pe(n: int, d: int, dtype: torch.dtype) -> torch.Tensor:
    """The original computes the encoding in float32 arithmetic; so do we, then cast."""
    pe = torch.zeros(n, d)
    pos = torch.arange(n, dtype=torch.float32)
    for i in range(0, d, 2):
        freq = torch.exp(torch.tensor(i, dtype=torch.float32) * (-math.log(10000.0) / d))
        pe[:, i] = torch.sin(pos * freq)
        pe[:, i + 1] = torch.cos(pos * freq)
    return pe.to(dtype)


def _ln(x, sd, p):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-5)


def _lin(x, sd, p, bias=True):
    y = x @ sd[p + ".weight"].T
    return y + sd[p + ".bias"] if bias else y


def _attention(q, k, v, n_heads, mask, bias=None, gamma=None, gate=None):
    b, tq, _ = q.shape
    tk = k.shape[1]
    dh = q.shape[-1] // n_heads
    q = q.view(b, tq, n_heads, dh).transpose(1, 2)
    k = k.view(b, tk, n_heads, dh).transpose(1, 2)
    v = v.view(b, tk, n_heads, dh).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
    if bias is not None:
        logits = logits + gamma[None, :, None, None] * bias[:, None]
    logits = logits.masked_fill(mask[:, None], -1e9)
    out = torch.softmax(logits, -1) @ v
    if gate is not None:
        out = out * torch.sigmoid(gate.view(b, tq, n_heads, dh).transpose(1, 2))
    return out.transpose(1, 2).reshape(b, tq, n_heads * dh)


def _ff(x, sd, p):
    return _ln(x + _lin(torch.relu(_lin(x, sd, p + ".l1")), sd, p + ".l2"), sd, p + ".ln")


def _valid(spans, nb):
    pos = torch.arange(nb)
    return (pos >= spans[..., :1]) & (pos < spans[..., :1] + spans[..., 1:])


def naive_forward(sd, batch, heads=(2, 2, 8), layers=(1, 2, 6), binsizes=(2000, 500, 100)):
    """Logits (B, n_out) from a state_dict and one of our batches."""
    reps = []
    n = batch["n_pcres"]
    for b in binsizes:
        x_p = batch["promoter_feats"][b]
        bsz, nb, _ = x_p.shape
        i_max = batch["pcre_feats"][b].shape[1]
        pe = _pe(nb, sd[f"embed.{b}.lin_proj.weight"].shape[0], x_p.dtype)
        vp = _valid(batch["promoter_bins"][b], nb)
        h = x_p @ sd[f"embed.{b}.lin_proj.weight"].T + pe
        for i in range(layers[0]):
            p = f"embed.{b}.transformer.layers.{i}"
            q, k, v = _lin(h, sd, p + ".self_att.att", False).chunk(3, -1)
            mask = ~(vp[:, :, None] & vp[:, None, :])
            h = _ln(h + _lin(_attention(q, k, v, heads[0], mask), sd, p + ".self_att.ff"), sd, p + ".self_att.ln")
            h = _ff(h, sd, p + ".ff")
        tss = h[:, nb // 2]
        tokens = [tss]
        for j in range(i_max):
            real = j < n
            vc = _valid(batch["pcre_bins"][b][:, j], nb) & real[:, None]
            hp = h @ sd[f"pairwise_interaction.{b}.lin_proj_p.weight"].T
            c = batch["pcre_feats"][b][:, j] @ sd[f"pairwise_interaction.{b}.lin_proj_pcre.weight"].T + pe
            mask = ~(vp[:, :, None] & vc[:, None, :])
            for i in range(layers[1]):
                p = f"pairwise_interaction.{b}.transformer.layers.{i}"
                q = _lin(hp, sd, p + ".self_att.p_att", False)
                k, v = _lin(c, sd, p + ".self_att.c_att", False).chunk(2, -1)
                att = _attention(q, k, v, heads[1], mask)
                hp = _ln(hp + _lin(att, sd, p + ".self_att.ff"), sd, p + ".self_att.ln")
                hp = _ff(hp, sd, p + ".ff")
            tokens.append(hp[:, nb // 2])
        x = torch.stack(tokens, 1)
        vt = torch.arange(1 + i_max) <= n[:, None]
        mask = ~(vt[:, :, None] & vt[:, None, :])
        freq = torch.zeros(bsz, 1 + i_max, 1 + i_max, dtype=x.dtype)
        freq[:, 0, 1:] = batch["interaction_freq"].to(x.dtype)
        for i in range(layers[2]):
            p = f"regulation.{b}.transformer.layers.{i}"
            q, k, v, g = _lin(x, sd, p + ".self_att.att", False).chunk(4, -1)
            att = _attention(q, k, v, heads[2], mask, freq, sd[p + ".self_att.gamma_f"], g)
            x = _ln(x + _lin(att, sd, p + ".self_att.ff"), sd, p + ".self_att.ln")
            x = _ff(x, sd, p + ".ff")
        reps.append(x[:, 0] + tss)
    z = torch.relu(_lin(torch.cat(reps, -1), sd, "fc_head.0"))
    return _lin(z, sd, "fc_head.2")


def perturbed_model(cls=None, seed: int = 0, scale: float = 0.2) -> torch.nn.Module:
    """A default-config model (``ChromoformerClassifier`` unless ``cls``) in eval mode, every parameter moved
    by ``scale`` x N(0, 1) after seeding (gamma_f, LayerNorms too), so that every path of the network matters."""
    from chromoformer import ChromoformerClassifier

    torch.manual_seed(seed)
    m = (cls or ChromoformerClassifier)().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * scale)
    return m
