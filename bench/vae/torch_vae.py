# torch_vae.py — the VAE of examples/vae/vae.ppl in PyTorch, for bench/vae/run.sh:
# the same architecture (encoder 64 -> 128 tanh -> 4, decoder 2 -> 128 tanh ->
# 64), likelihood (binomial(16, logit) per pixel), guide (normal with the
# encoder's mean and log sd), one-sample ELBO scaled by N / B over B images
# drawn without replacement each step, Adam (lr, 0.9, 0.999, 1e-8), in
# float64 as ppl computes, on one thread.  Prints the training's examples/s
# (steps * B / seconds of the steps alone), by the wall clock and by the
# process's CPU time, and the last 100 steps' mean ELBO.
#
#   /usr/bin/python3 bench/vae/torch_vae.py TRAIN.json STEPS BATCH LR [float32]
import json
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(1)
path, steps, batch, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
dtype = torch.float32 if len(sys.argv) > 5 and sys.argv[5] == "float32" else torch.float64
torch.set_default_dtype(dtype)
with open(path) as f:
    data = json.load(f)
x = torch.tensor(data["x"], dtype=dtype)
n = x.shape[0]
enc = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Tanh(), torch.nn.Linear(128, 4))
dec = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.Tanh(), torch.nn.Linear(128, 64))
opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=lr,
                       betas=(0.9, 0.999), eps=1e-8)
lchoose = (torch.lgamma(torch.tensor(17.0)) - torch.lgamma(x + 1) - torch.lgamma(17 - x))
half_log_2pi = 0.5 * torch.log(torch.tensor(2 * torch.pi))


def elbo(idx):
    xb, cb = x[idx], lchoose[idx]
    h = enc(xb / 16)
    mu, logsd = h[:, :2], h[:, 2:]
    eps = torch.randn_like(mu)
    z = mu + torch.exp(logsd) * eps
    logq = (-0.5 * eps ** 2 - logsd - half_log_2pi).sum()
    logpz = (-0.5 * z ** 2 - half_log_2pi).sum()
    l = dec(z)
    logpx = (cb + xb * torch.nn.functional.logsigmoid(l)
             + (16 - xb) * torch.nn.functional.logsigmoid(-l)).sum()
    return (n / len(idx)) * (logpz + logpx - logq)


trace = []
t0, c0 = time.perf_counter(), time.process_time()
for step in range(steps):
    idx = torch.randperm(n)[:batch].sort().values
    e = elbo(idx)
    opt.zero_grad()
    (-e).backward()
    opt.step()
    trace.append(e.item())
secs, cpu = time.perf_counter() - t0, time.process_time() - c0
last = trace[-100:]
print("torch %s: %d steps of %d: %.0f examples/s (wall), %.0f examples/s (CPU); "
      "ELBO (mean of the last %d steps) %.1f"
      % (str(dtype).replace("torch.", ""), steps, batch, steps * batch / secs, steps * batch / cpu,
         len(last), sum(last) / len(last)))
