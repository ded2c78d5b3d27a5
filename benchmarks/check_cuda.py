"""On a CUDA machine: `measure_latency` on the GPU, our v2 against torchvision's on the GPU, a v1 training step.

    python benchmarks/check_cuda.py     # needs a GPU; not part of the test suite
"""
import torch
import torchvision

import shufflesearch as ss
from shufflesearch.zoo import ZOO
from shufflesearch.registry import convert_torchvision_shufflenet_v2
print(torch.__version__, torch.cuda.get_device_name(0))
for name in ["shufflenet_v1_g3_x1_0", "shufflenet_v2_x1_0", "shufflenet_v1_g8_x2_0"]:
    for batch in (1, 64):
        cpu = ss.measure_latency(ZOO[name], 224, batch=batch, threads=16) if batch == 1 else None
        gpu = ss.measure_latency(ZOO[name], 224, batch=batch, device="cuda")
        print(f"{name} batch {batch}: cuda median {gpu.median_ms:.3f} ms p90 {gpu.p90_ms:.3f} channels_last={gpu.channels_last}"
              + (f"; cpu(16 threads) {cpu.median_ms:.2f} ms" if cpu else ""))
tv = torchvision.models.shufflenet_v2_x1_0().eval().cuda()
ours = ss.build(ZOO["shufflenet_v2_x1_0"]).eval().cuda()
ours.load_state_dict(convert_torchvision_shufflenet_v2(tv.state_dict()))
x = torch.randn(8, 3, 224, 224, device="cuda")
with torch.no_grad():
    d = (ours(x) - tv(x)).abs().max().item()
print("ours vs torchvision v2 x1_0 on CUDA, max |logit diff|:", d)
m = ss.build(ZOO["shufflenet_v1_g3_x0_5"], num_classes=10).cuda().train()
opt = torch.optim.SGD(m.parameters(), lr=0.1)
x = torch.randn(64, 3, 64, 64, device="cuda"); y = torch.randint(0, 10, (64,), device="cuda")
for _ in range(3):
    loss = torch.nn.functional.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()
print("v1 training steps on CUDA, loss", loss.item(), "all grads finite:", all(torch.isfinite(p.grad).all().item() for p in m.parameters()))
