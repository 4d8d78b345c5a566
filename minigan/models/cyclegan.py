"""CycleGAN (Zhu, Park, Isola & Efros, 2017): translation between two domains, unpaired.

Two sets of images, A and B (plain digits and striped ones; horses and zebras), with no
pairs: no image of A comes with "its" image in B. Two generators translate, each way,
and a discriminator per domain judges:

    G_AB: A -> B,   G_BA: B -> A,   D_B: is this a real B?,   D_A: is this a real A?

An adversarial loss alone would let G_AB draw *any* B image that fools D_B (a zebra, but
not the one the horse would have become). The cycle loss asks each translation to be
undone by the other, so that G_AB(a) must keep what makes a itself:

    G_BA(G_AB(a)) ~ a   and   G_AB(G_BA(b)) ~ b.

The objective (least-squares GAN losses, as the paper's code; one Adam over both G's):

    L_G = mean (D_B(G_AB(a)) - 1)^2 + mean (D_A(G_BA(b)) - 1)^2                  fool both D's
        + lambda_cyc * ( |G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1 )           the cycle
        + lambda_idt * ( |G_BA(a) - a|_1 + |G_AB(b) - b|_1 )                       identity
    L_D = 1/2 [ mean (D_B(b) - 1)^2 + mean D_B(pool_B(G_AB(a)))^2 ]  (and the same for D_A)

|.|_1 is the mean absolute error over every pixel; lambda_cyc = 10 and lambda_idt =
0.5 * lambda_cyc = 5, the paper's. The identity term asks a G handed an image that is
already of its target domain to leave it alone (the paper found it keeps colours).

The algorithm box, one ``train_step(a, b)`` (the paper's code's order, G then D):

    1. fake_b = G_AB(a), idt_b = G_AB(b);  fake_a = G_BA(b), idt_a = G_BA(a)   translate
    2. rec_a = G_BA(fake_b),  rec_b = G_AB(fake_a)                               and back
    3. update G_AB and G_BA on L_G, the D's frozen (they only pass the gradient on)
    4. update D_A and D_B on L_D, each shown a real batch and fakes from its pool

The pool (Shrivastava et al., 2017) keeps 50 earlier fakes; each new fake is, with
probability 1/2, swapped for a stored one, which D then judges instead. D thus sees
fakes from G's recent past, not only its latest, which damps the oscillation of G and D
chasing each other.

Backward through two uses of one network
----------------------------------------
Each G runs twice in a step: G_AB translates a (and b, for the identity term), and G_AB
also maps fake_a = G_BA(b) back to B. A layer keeps one forward cache, so the second use
runs on a twin (``Module.shared_copy``: the same Parameter objects, its own cache); both
backward passes add into the same ``.grad``, as the two uses add in dL/dtheta. The
gradient then flows backwards through the cycle:

    dL/d fake_b = D_B's backward of the adversarial term     (D_B frozen)
                + G_BA-twin's backward of lambda_cyc dL1/d rec_a
    dL/d fake_a = the same with the roles swapped
    G_AB.backward([dL/d fake_b; dL/d idt_b]),  G_BA.backward([dL/d fake_a; dL/d idt_a])

G_AB sees a and b stacked in one pass (and G_BA b and a): InstanceNorm normalises each
image by its own statistics, so stacking changes nothing, and D's one pass over
[real; pool fakes] is the two means of L_D exactly (equal halves).

The networks, the paper's scaled down to 28x28 (or 32x32) images and a CPU
--------------------------------------------------------------------------
G (Johnson et al.'s ResNet, ngf = ``base_channels``; the paper's: ngf 64, 9 blocks at
256x256, 6 at 128x128):

    ReflectionPad 3, Conv 7x7 (C -> ngf), IN, ReLU                          28x28
    Conv 3x3 stride 2 (ngf -> 2ngf), IN, ReLU                               14x14
    Conv 3x3 stride 2 (2ngf -> 4ngf), IN, ReLU                               7x7
    ``residual_blocks`` x [x + (ReflectionPad 1, Conv 3x3, IN, ReLU,
                               ReflectionPad 1, Conv 3x3, IN)(x)]            7x7
    ConvT 3x3 stride 2 (4ngf -> 2ngf), IN, ReLU                             14x14
    ConvT 3x3 stride 2 (2ngf -> ngf), IN, ReLU                              28x28
    ReflectionPad 3, Conv 7x7 (ngf -> C), Tanh

D (the PatchGAN, ndf = ``base_channels``): 4x4 convolutions, LeakyReLU(0.2), IN after all
but the first; ``d_layers`` strided ones (the paper's: 3, a 70x70 patch of 256x256), then
one of stride 1 and the 1-channel output of stride 1. With 2 strided layers a 28x28 image
gives 5x5 scores, each judging a 34x34 window (the borders padded): every score sees the
digit, and the mean of the squared errors over the 25 scores is L_D's mean.

Departures from the paper, each to fit a CPU (what they gave: benchmarks/RESULTS.md,
"CycleGAN"):

- ``base_channels`` 12 (the paper's ngf = ndf = 64), ``residual_blocks`` 3 (6 or 9),
  ``d_layers`` 2 (3): the networks scaled to 28x28 images, 7x7 inside G as 64x64 is
  inside the paper's G at 256x256, and to a CPU.
- ``batch_size`` 8 (the paper's: 1): fewer, larger steps, the same Adam.
- The rate stays at 2e-4 for the first half of training and falls linearly to 0 over the
  second, as the paper's (100 epochs + 100 of decay), by steps: ``plan_steps`` is told
  how many steps the run will take.
- Weights ~ N(0, 0.02) and biases 0, the paper code's initialisation.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module, to_host
from minigan.losses import L1Loss, MSELoss
from minigan.models.base import Model, check_adam, check_positive, frozen, option
from minigan.models.dcgan import dcgan_init
from minigan.nn.checks import check_array, is_integer
from minigan.optim import Adam

CHANNELS = (1, 3)  # grey or RGB
DIRECTIONS = ("AB", "BA")


@dataclass
class CycleGANConfig:
    """A CycleGAN: the two domains' image shape, the networks, and the paper's objective."""

    image_size: int = option(28, "the side of the square images", flag=False)
    channels: int = option(1, "channels per image: 1 (grey) or 3 (RGB)", flag=False)
    base_channels: int = option(
        12, "channels of G's first and D's first convolution, doubled at each stride "
        "(ngf = ndf; the paper's: 64)"
    )  # fmt: skip
    residual_blocks: int = option(3, "residual blocks in the middle of G (the paper's: 6 or 9)")
    d_layers: int = option(2, "strided convolutions in D, the PatchGAN (the paper's: 3)")
    cycle_weight: float = option(
        10.0, "lambda_cyc: the weight of the cycle loss |G_BA(G_AB(a)) - a|_1"
    )
    identity_weight: float = option(
        0.5, "the identity loss |G_AB(b) - b|_1's weight, as a share of cycle_weight (0: none)"
    )
    pool_size: int = option(50, "earlier fakes kept for D (0: D sees only the latest)")
    lr: float = option(
        2e-4, "learning rate of both players, falling linearly to 0 over the second half"
    )
    betas: tuple[float, float] = option((0.5, 0.999), "Adam's (beta1, beta2)", flag=False)
    batch_size: int = option(8, "batch size: images of each domain per step (the paper's: 1)")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        check_positive(self, "image_size", "base_channels", "residual_blocks", "d_layers",
                       "batch_size")  # fmt: skip
        if self.image_size % 4:
            raise ValueError(
                f"image_size must be a multiple of 4 (G halves it twice and doubles it "
                f"back), got {self.image_size}"
            )
        for name in ("cycle_weight", "identity_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)}")
        if not (is_integer(self.pool_size) and self.pool_size >= 0):
            raise ValueError(f"pool_size must be an integer >= 0 (0: none), got {self.pool_size!r}")
        check_adam(self)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_generator(config: CycleGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """Johnson et al.'s ResNet generator (the module doc's table): an image to an image."""
    c, ngf = config.channels, config.base_channels

    def conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
        return nn.Conv2d(cin, cout, k, stride, padding, rng=rng, dtype=dtype)

    def block(width: int) -> nn.Module:  # x + f(x): the residual learns a change of x
        return nn.Residual(nn.Sequential(
            nn.ReflectionPad2d(1), conv(width, width, 3), nn.InstanceNorm2d(width), nn.ReLU(),
            nn.ReflectionPad2d(1), conv(width, width, 3), nn.InstanceNorm2d(width),
        ))  # fmt: skip

    def up(cin: int, cout: int) -> list[nn.Module]:
        t = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, rng=rng, dtype=dtype)
        return [t, nn.InstanceNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        nn.ReflectionPad2d(3), conv(c, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(),
        conv(ngf, 2 * ngf, 3, 2, 1), nn.InstanceNorm2d(2 * ngf), nn.ReLU(),
        conv(2 * ngf, 4 * ngf, 3, 2, 1), nn.InstanceNorm2d(4 * ngf), nn.ReLU(),
        *[block(4 * ngf) for _ in range(config.residual_blocks)],
        *up(4 * ngf, 2 * ngf), *up(2 * ngf, ngf),
        nn.ReflectionPad2d(3), conv(ngf, c, 7), nn.Tanh(),
    )  # fmt: skip


def build_discriminator(
    config: CycleGANConfig, rng: np.random.Generator, dtype: Any
) -> nn.Sequential:
    """The PatchGAN: an image to a map of scores, one per window (no sigmoid: least squares)."""
    # ndf, 2ndf, 4ndf, ... (at most 8ndf, as the paper's): one width per convolution.
    widths = [config.base_channels * min(2**i, 8) for i in range(config.d_layers + 1)]

    def conv(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Conv2d(cin, cout, 4, stride, 1, rng=rng, dtype=dtype)

    layers: list[nn.Module] = [conv(config.channels, widths[0], 2), nn.LeakyReLU(0.2)]
    for i in range(1, config.d_layers + 1):  # the other strided ones, then one of stride 1
        stride = 2 if i < config.d_layers else 1
        layers += [conv(widths[i - 1], widths[i], stride), nn.InstanceNorm2d(widths[i])]
        layers += [nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, conv(widths[-1], 1, 1))


def count_parameters(config: CycleGANConfig) -> int:
    """Weights and biases of both G's and both D's, from the config alone (nothing built)."""
    c, ngf = config.channels, config.base_channels

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout

    g = conv(c, ngf, 7) + conv(ngf, 2 * ngf, 3) + conv(2 * ngf, 4 * ngf, 3)
    g += 2 * config.residual_blocks * conv(4 * ngf, 4 * ngf, 3)
    g += conv(4 * ngf, 2 * ngf, 3) + conv(2 * ngf, ngf, 3) + conv(ngf, c, 7)
    widths = [c] + [ngf * min(2**i, 8) for i in range(config.d_layers + 1)] + [1]
    d = sum(conv(cin, cout, 4) for cin, cout in itertools.pairwise(widths))
    return 2 * (g + d)


def estimate_memory(config: CycleGANConfig, rows: int) -> int:
    """About how many bytes training needs: the parameters' 4 arrays (weights, gradients,
    Adam's two moments), and for ``rows`` images of each domain G's feature maps six times
    (two G's, each on a, b and the cycle), times 3 for the forward caches, im2col
    columns and gradients, the 7x7 convolutions' columns counted on their own (49 taps)."""
    c, ngf, size = config.channels, config.base_channels, config.image_size
    maps = ngf * size**2 * 2 + 2 * ngf * (size // 2) ** 2 * 2
    maps += 4 * ngf * (size // 4) ** 2 * (2 + 4 * config.residual_blocks)
    columns = 49 * (c + ngf) * size**2  # the two 7x7 convolutions' im2col
    per_image = 3 * maps + columns + 8 * c * size**2
    return 4 * (4 * count_parameters(config) + 6 * rows * per_image)


class Pair(nn.Module):
    """Two networks held as one, so that one optimizer and one state hold both:
    ``Pair(ab=G_AB, ba=G_BA)``, ``Pair(a=D_A, b=D_B)``. Each is used by its name; the
    pair itself has no forward."""

    def __init__(self, **networks: nn.Module):
        for name, network in networks.items():
            setattr(self, name, network)

    def forward(self, x: Any) -> Any:
        raise TypeError(f"a Pair of networks has no forward: use one of {list(vars(self))}")


class ImagePool:
    """The last ``size`` fakes shown to D (Shrivastava et al.), kept on the model's device.

    ``query(fakes)``: until the pool is full, each fake is stored and passed through; then
    each fake, with probability 1/2, is passed through, else swapped for a stored one
    drawn uniformly (which D judges instead), the fake taking its place. The coin and the
    slot come from the model's noise stream, on its device: no value is read back.
    """

    def __init__(self, size: int, image_shape: tuple[int, ...], xp: Any, dtype: Any):
        self.size = size
        self.images = xp.zeros((size, *image_shape), dtype=dtype)
        self.count = 0  # how many are stored: known on the host, never read from the device

    def query(self, fakes: Any, rng: Any) -> Any:
        if self.size == 0:
            return fakes
        xp = get_array_module(fakes)
        shown = []
        for i in range(fakes.shape[0]):  # one at a time: two fakes may draw the same slot
            fake = fakes[i : i + 1]
            if self.count < self.size:
                self.images[self.count] = fake[0]
                self.count += 1
                shown.append(fake)
                continue
            swap = rng.random((1, 1, 1, 1), dtype=fakes.dtype) < 0.5
            slot = rng.integers(0, self.size, size=1, dtype=np.int64)
            stored = self.images[slot]
            shown.append(xp.where(swap, stored, fake))
            self.images[slot] = xp.where(swap, fake, stored)
        return xp.concatenate(shown)

    def state_dict(self) -> dict[str, Any]:
        """The stored fakes (a host copy) and how many are stored."""
        return {"images": to_host(self.images), "count": self.count}

    def check_state(self, state: Any) -> tuple[np.ndarray, int]:
        """A ``state_dict()`` of a pool of this size and image shape, else a ValueError."""
        where = "ImagePool.load_state_dict"
        if not isinstance(state, dict) or set(state) != {"images", "count"}:
            raise ValueError(f"{where}: expected a dict of 'images' and 'count'")
        images, count = np.asarray(state["images"]), state["count"]
        if images.shape != self.images.shape:
            raise ValueError(f"{where}: pool images of shape {images.shape}, expected "
                             f"{self.images.shape}: the pool_size or images differ")  # fmt: skip
        if not (is_integer(count) and 0 <= count <= self.size):
            raise ValueError(f"{where}: count {count!r} outside [0, {self.size}]")
        return images, int(count)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        images, count = self.check_state(state)
        self.images[...] = get_array_module(self.images).asarray(images, dtype=self.images.dtype)
        self.count = count


class CycleGAN(Model):
    """Unpaired translation A <-> B. Stats: ``d_loss`` (L_D, both domains), ``g_gan`` (the
    adversarial part of L_G), ``cycle`` and ``identity`` (the two L1 terms, unweighted)."""

    name = "cyclegan"
    summary = "unpaired translation between two domains (G_AB, G_BA), kept honest by a cycle loss"
    config_class = CycleGANConfig
    translation = True  # trained on two domains: train_step(a, b)
    default_epochs = 1  # 3,750 steps of 8 pairs: benchmarks/RESULTS.md, "CycleGAN"
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: 1/2 [(D(x) - 1)^2 + D(pool fake)^2], D_A's and D_B's summed",
        "g_gan": "G's adversarial loss: (D_B(G_AB(a)) - 1)^2 + (D_A(G_BA(b)) - 1)^2",
        "cycle": "cycle loss |G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1",
        "identity": "identity loss |G_BA(a) - a|_1 + |G_AB(b) - b|_1",
    }

    def __init__(self, config: CycleGANConfig, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        G = self.generator
        # The second use of each G in a step: same weights, its own forward cache.
        self.twin = Pair(ab=G.ab.shared_copy(), ba=G.ba.shared_copy())
        xp = self.backend.xp
        self.pools = {
            domain: ImagePool(config.pool_size, config.image_shape, xp, self.dtype)
            for domain in ("A", "B")
        }
        self.gan_loss, self.l1 = MSELoss(), L1Loss()
        self.total_steps: int | None = None  # plan_steps: the rate's linear fall to 0

    @classmethod
    def config_for_images(
        cls, config: CycleGANConfig, shape: tuple[int, int, int]
    ) -> CycleGANConfig:
        """``config`` for square images of ``shape`` (channels, size, size)."""
        channels, height, width = shape
        if height != width:
            raise ValueError(f"CycleGAN: images must be square, got {height}x{width}")
        return dataclasses.replace(config, channels=channels, image_size=height)

    @classmethod
    def parameter_count(cls, config: CycleGANConfig) -> int:
        """Weights of the two G's and two D's, from the config alone (``count_parameters``)."""
        return count_parameters(config)

    @classmethod
    def memory_bytes(cls, config: CycleGANConfig, rows: int) -> int:
        """About how much memory training needs, in bytes (``estimate_memory``)."""
        return estimate_memory(config, rows)

    def build_networks(
        self, config: CycleGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Module, nn.Module]:
        G = Pair(ab=build_generator(config, rng, dtype), ba=build_generator(config, rng, dtype))
        D = Pair(
            a=build_discriminator(config, rng, dtype), b=build_discriminator(config, rng, dtype)
        )
        return dcgan_init(G, rng), dcgan_init(D, rng)  # weights ~ N(0, 0.02), biases 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def plan_steps(self, total_steps: int) -> None:
        """The run will take ``total_steps`` steps: the rate falls linearly to 0 over the
        second half of them (the paper's schedule, by steps instead of epochs)."""
        if not (is_integer(total_steps) and total_steps >= 1):
            raise ValueError(
                f"plan_steps: total_steps must be an integer >= 1, got {total_steps!r}"
            )
        self.total_steps = int(total_steps)

    def learning_rate(self) -> float:
        """lr at this step: lr for the first half of the run, then linearly to 0."""
        if self.total_steps is None:
            return self.config.lr
        left = max(self.total_steps - self.steps, 0) / self.total_steps  # 1 -> 0
        return self.config.lr * min(1.0, 2 * left)

    def state_dict(self) -> dict[str, Any]:
        """``Model.state_dict()`` and the two pools of fakes (a resumed run draws the same)."""
        return {**super().state_dict(),
                "pools": {domain: pool.state_dict() for domain, pool in self.pools.items()}}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """All or nothing, as ``Model.load_state_dict``: the pools are checked first."""
        if not isinstance(state, dict) or state.get("model") != self.name:
            return super().load_state_dict(state)  # refused, naming what it is
        pools = state.get("pools")
        if not isinstance(pools, dict) or set(pools) != set(self.pools):
            raise KeyError("CycleGAN.load_state_dict: the state has no ['pools'] of 'A' and 'B'")
        for domain, pool in self.pools.items():
            pool.check_state(pools[domain])
        super().load_state_dict(state)
        for domain, pool in self.pools.items():
            pool.load_state_dict(pools[domain])

    # --- sampling: translation -------------------------------------------------------------

    def translate(self, images: Any, direction: str = "AB") -> Any:
        """G_AB(images) (``"AB"``) or G_BA(images) (``"BA"``), images in [-1, 1]."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'AB' or 'BA', got {direction!r}")
        check_array("CycleGAN.translate", images, xp=self.backend.xp, dtype=self.dtype,
                    shape=("n", *self.image_shape), name="images")  # fmt: skip
        G = self.generator.ab if direction == "AB" else self.generator.ba
        return G.forward(images)

    def generate(self, z: Any) -> Any:
        raise TypeError("a CycleGAN draws no images from noise: translate(images, 'AB' or 'BA')")

    def sample_noise(self, n: int) -> Any:
        raise TypeError("a CycleGAN takes no noise: it translates images (translate)")

    # --- training --------------------------------------------------------------------------

    def train_step(self, a: Any, b: Any) -> dict[str, Any]:  # type: ignore[override]
        """One step of the algorithm box: G_AB and G_BA on L_G, then D_A and D_B on L_D.

        Args:
            a, b: batches of the two domains' real images in [-1, 1], (n, C, H, W) each,
                unrelated (unpaired).
        """
        for name, batch in (("domain A batch", a), ("domain B batch", b)):
            check_array("CycleGAN.train_step", batch, xp=self.backend.xp, dtype=self.dtype,
                        shape=(a.shape[0], *self.image_shape), name=name)  # fmt: skip
        for optimizer in (self.g_optimizer, self.d_optimizer):
            optimizer.lr = self.learning_rate()
        fake_a, fake_b, stats = self.generator_step(a, b)
        stats["d_loss"] = self.discriminator_step(a, b, fake_a, fake_b)
        self.steps += 1
        return {key: stats[key] for key in self.stats}

    def generator_step(self, a: Any, b: Any) -> tuple[Any, Any, dict[str, Any]]:
        """Steps 1-3: translate, translate back, and update both G's on L_G."""
        xp, n, cfg = get_array_module(a), a.shape[0], self.config
        G, twin, D = self.generator, self.twin, self.discriminator
        self.g_optimizer.zero_grad()
        out_ab = G.ab.forward(xp.concatenate([a, b]))
        fake_b, idt_b = out_ab[:n], out_ab[n:]  # G_AB(a), G_AB(b)
        out_ba = G.ba.forward(xp.concatenate([b, a]))
        fake_a, idt_a = out_ba[:n], out_ba[n:]  # G_BA(b), G_BA(a)
        rec_a, rec_b = twin.ba.forward(fake_b), twin.ab.forward(fake_a)  # the cycles

        # Fool each D: dL/d fake through the frozen D (D learns nothing here).
        with frozen(D):
            g_gan_b = self.gan_loss.forward(D.b.forward(fake_b), 1.0)
            d_fake_b = D.b.backward(self.gan_loss.backward())
            g_gan_a = self.gan_loss.forward(D.a.forward(fake_a), 1.0)
            d_fake_a = D.a.backward(self.gan_loss.backward())

        # The cycle: back through the second use of each G, into the fake it was handed.
        lam, lam_idt = cfg.cycle_weight, cfg.identity_weight * cfg.cycle_weight
        cycle_a = self.l1.forward(rec_a, a)
        d_fake_b = d_fake_b + twin.ba.backward(lam * self.l1.backward())
        cycle_b = self.l1.forward(rec_b, b)
        d_fake_a = d_fake_a + twin.ab.backward(lam * self.l1.backward())
        identity_b = self.l1.forward(idt_b, b)
        d_idt_b = lam_idt * self.l1.backward()
        identity_a = self.l1.forward(idt_a, a)
        d_idt_a = lam_idt * self.l1.backward()

        # Then through each G's first use, the translated batch and the identity batch stacked.
        G.ab.backward(xp.concatenate([d_fake_b, d_idt_b]), input_grad=False)
        G.ba.backward(xp.concatenate([d_fake_a, d_idt_a]), input_grad=False)
        self.g_optimizer.step()
        stats = {
            "g_gan": xp.asarray(g_gan_b + g_gan_a),
            "cycle": xp.asarray(cycle_a + cycle_b),
            "identity": xp.asarray(identity_a + identity_b),
        }
        return fake_a, fake_b, stats

    def discriminator_step(self, a: Any, b: Any, fake_a: Any, fake_b: Any) -> Any:  # type: ignore[override]
        """Step 4: each D fits 1 on its domain's real batch and 0 on fakes from its pool."""
        xp, n = get_array_module(a), a.shape[0]
        self.d_optimizer.zero_grad()
        d_loss = 0
        for D, real, fake, domain in ((self.discriminator.b, b, fake_b, "B"),
                                      (self.discriminator.a, a, fake_a, "A")):  # fmt: skip
            shown = self.pools[domain].query(fake, self.noise_rng)
            scores = D.forward(xp.concatenate([real, shown]))
            targets = xp.zeros_like(scores)  # 1 on the real half, 0 on the fakes
            targets[:n] = 1
            d_loss = d_loss + self.gan_loss.forward(scores, targets)  # = 1/2 (real + fake)
            D.backward(self.gan_loss.backward(), input_grad=False)
        self.d_optimizer.step()
        return xp.asarray(d_loss)
