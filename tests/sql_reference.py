"""An independent Python (PyTorch) implementation of the SQL update, written from
shared/docs/soft_q_learning.md. Used two ways:

  * tests/sql_crosscheck_test.sh: reads what //tests:sql_crosscheck_dump wrote (weights, batch,
    noise, and the C++ losses and gradients), recomputes them here and fails unless they agree
    to 1e-5;
  * bench/sql_update_bench: the user's alternative, timed side by side with the C++ update.
"""
import math
import sys
import time

import torch
from torch import nn


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def linears(net):
    return [m for m in net if isinstance(m, nn.Linear)]


def q_value(q, obs, act):
    return q(torch.cat([obs, act], -1)).squeeze(-1)


def policy_actions(policy, obs, xi):
    return torch.tanh(policy(torch.cat([obs, xi], -1)))


def critic_loss(q, q_target, obs, act, rew, next_obs, done, value_actions, cfg):
    b, m, d = obs.shape[0], value_actions.shape[0], act.shape[1]
    with torch.no_grad():
        q_next = q_value(q_target, next_obs[:, None, :].expand(b, m, next_obs.shape[1]),
                         value_actions[None].expand(b, m, d))
        v_next = torch.logsumexp(q_next, 1) - math.log(m) + d * math.log(2.0)
        target = cfg["reward_scale"] * rew + (1.0 - done) * cfg["discount"] * v_next
    return 0.5 * ((target - q_value(q, obs, act)) ** 2).mean()


def policy_surrogate(policy, q, obs, xi, update_ratio):
    b, k, d = xi.shape
    obs_k = obs[:, None, :].expand(b, k, obs.shape[1])
    actions = policy_actions(policy, obs_k, xi)
    k_fixed = k - int(k * update_ratio)
    fixed = actions[:, :k_fixed].detach().requires_grad_(True)
    updated = actions[:, k_fixed:]
    log_p = q_value(q, obs_k[:, :k_fixed], fixed) + torch.log(1 - fixed ** 2 + 1e-6).sum(-1)
    grad_log_p = torch.autograd.grad(log_p.sum(), fixed)[0]
    x, y = fixed.detach(), updated.detach()
    diff = x[:, :, None, :] - y[:, None, :, :]
    dist_sq = (diff ** 2).sum(-1)
    h = torch.clamp(dist_sq.reshape(b, -1).median(1).values / math.log(k_fixed), min=1e-3)
    h = h[:, None, None]
    kappa = torch.exp(-dist_sq / h)
    kappa_grad = -2.0 * diff / h[..., None] * kappa[..., None]
    delta = (kappa[..., None] * grad_log_p[:, :, None, :]).mean(1) + kappa_grad.mean(1)
    return -(delta.detach() * updated).sum()


# ---- cross-check -----------------------------------------------------------------------

def read_dump(path):
    """name -> tensor, from lines 'name d0,d1,...' followed by one line of values."""
    tensors = {}
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    while i + 1 < len(lines) and lines[i]:
        name, shape = lines[i].split(" ")
        dims = [int(s) for s in shape.split(",") if s]
        values = [float(v) for v in lines[i + 1].split(" ") if v]
        tensors[name] = torch.tensor(values, dtype=torch.float32).reshape(dims)
        i += 2
    return tensors


def load_net(net, t, prefix):
    with torch.no_grad():
        for j, lin in enumerate(linears(net)):
            lin.weight.copy_(t[f"{prefix}.mlp.layers.{j}.weight"])
            lin.bias.copy_(t[f"{prefix}.mlp.layers.{j}.bias"])


def compare(what, ours, theirs, tol):
    err = (ours - theirs).abs().max().item()
    scale = max(1.0, theirs.abs().max().item())
    ok = err <= tol * scale
    print(f"{'ok  ' if ok else 'FAIL'} {what}: max |python - c++| = {err:.3g} (scale {scale:.3g})")
    return ok


def crosscheck(path, tol=1e-5):
    t = read_dump(path)
    cfg = {"reward_scale": t["cfg.reward_scale"].item(), "discount": t["cfg.discount"].item()}
    ratio = t["cfg.kernel_update_ratio"].item()
    hidden = [int(h) for h in t["cfg.hidden"].tolist()]
    o, d = t["batch.observations"].shape[1], t["batch.actions"].shape[1]
    q, q_target, policy = mlp([o + d] + hidden + [1]), mlp([o + d] + hidden + [1]), mlp([o + d] + hidden + [d])
    load_net(q, t, "q")
    load_net(q_target, t, "q_target")
    load_net(policy, t, "policy")
    obs, act = t["batch.observations"], t["batch.actions"]
    loss = critic_loss(q, q_target, obs, act, t["batch.rewards"], t["batch.next_observations"],
                       t["batch.dones"], t["noise.value_actions"], cfg)
    loss.backward()
    surrogate = policy_surrogate(policy, q, obs, t["noise.policy_noise"], ratio)
    for p in policy.parameters():
        p.grad = None
    surrogate.backward()
    ok = compare("critic loss", loss.detach(), t["out.critic_loss"], tol)
    ok &= compare("policy surrogate", surrogate.detach(), t["out.policy_surrogate"], tol)
    for j, lin in enumerate(linears(q)):
        ok &= compare(f"dJ_Q/d q.layers.{j}.weight", lin.weight.grad, t[f"grad.q.mlp.layers.{j}.weight"], tol)
        ok &= compare(f"dJ_Q/d q.layers.{j}.bias", lin.bias.grad, t[f"grad.q.mlp.layers.{j}.bias"], tol)
    for j, lin in enumerate(linears(policy)):
        ok &= compare(f"dsurrogate/d policy.layers.{j}.weight", lin.weight.grad, t[f"grad.policy.mlp.layers.{j}.weight"], tol)
        ok &= compare(f"dsurrogate/d policy.layers.{j}.bias", lin.bias.grad, t[f"grad.policy.mlp.layers.{j}.bias"], tol)
    return ok


# ---- benchmark ---------------------------------------------------------------------------

def bench(updates, batch, threads, device="cpu", hidden=(128, 128), o=2, d=2, m=16, k=32):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    cfg = {"reward_scale": 0.1, "discount": 0.99}
    q, q_target, policy = (mlp([o + d, *hidden, 1]).to(dev), mlp([o + d, *hidden, 1]).to(dev),
                           mlp([o + d, *hidden, d]).to(dev))
    q_target.load_state_dict(q.state_dict())
    q_opt = torch.optim.Adam(q.parameters(), lr=3e-4)
    p_opt = torch.optim.Adam(policy.parameters(), lr=3e-4)
    obs, act = torch.randn(batch, o, device=dev), torch.rand(batch, d, device=dev) * 2 - 1
    rew, next_obs = torch.randn(batch, device=dev), torch.randn(batch, o, device=dev)
    done = torch.zeros(batch, device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def step():
        value_actions = torch.rand(m, d, device=dev) * 2 - 1
        xi = torch.randn(batch, k, d, device=dev)
        q_opt.zero_grad()
        p_opt.zero_grad()
        critic_loss(q, q_target, obs, act, rew, next_obs, done, value_actions, cfg).backward()
        policy_surrogate(policy, q, obs, xi, 0.5).backward()
        q_opt.step()
        p_opt.step()

    for _ in range(max(5, updates // 10)):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(updates):
        step()
    sync()
    return updates / (time.perf_counter() - start)


if __name__ == "__main__":
    if sys.argv[1] == "crosscheck":
        sys.exit(0 if crosscheck(sys.argv[2]) else 1)
    elif sys.argv[1] == "bench":
        updates, batch, threads = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        device = sys.argv[5] if len(sys.argv) > 5 else "cpu"
        print(f"updates_per_second {bench(updates, batch, threads, device):.2f}")
    else:
        sys.exit("usage: sql_reference.py crosscheck DUMP | bench UPDATES BATCH THREADS [DEVICE]")
