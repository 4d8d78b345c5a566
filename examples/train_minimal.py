"""A GAN on MNIST in one page: the whole training loop written out, nothing hidden.

    python examples/train_minimal.py                 # 15 epochs on the CPU
    python examples/train_minimal.py --backend cupy  # the same on a GPU

Writes runs/train_minimal.png (64 samples). For checkpoints, resume, metrics and every
option, use examples/mnist_gan.py; this file is for reading.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from minigan import nn
from minigan.backend import get_backend, to_host
from minigan.data import BatchIterator, load_mnist, to_gan_range
from minigan.losses import BCEWithLogitsLoss
from minigan.models.base import frozen
from minigan.optim import Adam
from minigan.plotting import save_image_grid

parser = argparse.ArgumentParser(description="Train a small GAN on MNIST, the loop written out.")
parser.add_argument("--epochs", type=int, default=15, help="passes over the data (default: 15)")
parser.add_argument("--backend", default="numpy", help="'numpy' (CPU) or 'cupy' (GPU)")
args = parser.parse_args()
out = Path("runs/train_minimal.png")
if out.exists():  # never overwrite a picture someone kept
    sys.exit(f"error: {out} exists; move it away (this script never overwrites it)")
backend = get_backend(args.backend)

# The two players: G turns 64 numbers of noise into an image, D scores an image (a logit).
rng, Z, H = np.random.default_rng(0), 64, 512
G = nn.Sequential(
    nn.Linear(Z, H, rng=rng), nn.LeakyReLU(0.2),
    nn.Linear(H, H, rng=rng), nn.LeakyReLU(0.2),
    nn.Linear(H, 784, rng=rng), nn.Tanh(),  # images in [-1, 1], like the data
).to(backend)  # fmt: skip
D = nn.Sequential(
    nn.Linear(784, H, rng=rng), nn.LeakyReLU(0.2),
    nn.Linear(H, H, rng=rng), nn.LeakyReLU(0.2),
    nn.Linear(H, 1, rng=rng),
).to(backend)  # fmt: skip
opt_G = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))  # optimizers after .to(backend)
opt_D = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
bce = BCEWithLogitsLoss()
noise = backend.default_rng(0)

images = to_gan_range(load_mnist("train")[0])  # (60000, 784) in [-1, 1]
batches = BatchIterator(images, batch_size=100, seed=0, backend=backend)
for epoch in range(args.epochs):
    for real in batches:
        fake = G(noise.standard_normal((100, Z), dtype=np.float32))

        # D step: score real images as real (0.9: one-sided label smoothing), fakes as fake.
        opt_D.zero_grad()
        d_loss = bce(D(real), 0.9)
        D.backward(bce.backward())  # adds dL/dW into D's .grad
        d_loss = d_loss + bce(D(fake), 0.0)
        D.backward(bce.backward())  # adds the fake half's gradient on top
        opt_D.step()

        # G step: the loss sits at D's output; its gradient crosses the frozen D into G.
        # D(fake) is scored by the D just updated above (Goodfellow et al.'s Algorithm 1).
        opt_G.zero_grad()
        g_loss = bce(D(fake), 1.0)  # G wants D to call its images real
        with frozen(D):  # D is only the messenger here: its weights learn nothing
            grad_fake = D.backward(bce.backward())  # dL/d(image)
        G.backward(grad_fake)  # dL/d(G's weights), into G's .grad
        opt_G.step()
    # float() reads a value back from the device: once per epoch, not every step.
    print(f"epoch {epoch + 1}: D loss {float(d_loss):.3f}, G loss {float(g_loss):.3f}")

z = noise.standard_normal((64, Z), dtype=np.float32)
out.parent.mkdir(parents=True, exist_ok=True)
save_image_grid((to_host(G(z)).reshape(-1, 28, 28) + 1) / 2, out)
print(f"64 samples in {out}")
