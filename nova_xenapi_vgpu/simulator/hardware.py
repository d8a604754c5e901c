"""The GPU boards the simulator knows: PCI identity and vGPU types."""

import dataclasses

GIB = 1024 ** 3
MIB = 1024 ** 2


@dataclasses.dataclass(frozen=True)
class VgpuTypeSpec:
    """One vGPU type as xapi describes it, and how many fit on a pGPU."""

    model_name: str
    vendor_name: str
    framebuffer_size: int
    max_heads: int
    max_resolution_x: int
    max_resolution_y: int
    implementation: str
    per_pgpu: int
    multiple_per_vm: bool = False
    identifier: str = ''


@dataclasses.dataclass(frozen=True)
class GpuModel:
    """A physical GPU: its PCI identity and the vGPU types it supports."""

    vendor_id: str
    device_id: str
    vendor_name: str
    device_name: str
    subsystem_vendor_id: str
    subsystem_device_id: str
    driver: str
    types: tuple
    class_id: str = '0300'
    class_name: str = 'VGA compatible controller'
    sriov_totalvfs: int = 0
    passthrough: bool = True


PASSTHROUGH = VgpuTypeSpec('passthrough', '', 0, 0, 0, 0, 'passthrough', 1)
NVIDIA = 'NVIDIA Corporation'


def _m60(name, fb, heads, res, per_pgpu):
    return VgpuTypeSpec('GRID M60-%s' % name, NVIDIA, fb, heads, res[0],
                        res[1], 'nvidia', per_pgpu,
                        identifier='0001;10de;13f2;113a;%s' % name)


_4K = (4096, 2160)
_2K = (2560, 1600)
_A = (1280, 1024)

M60_TYPES = (
    _m60('0B', 436207616, 2, _2K, 16), _m60('0Q', 512 * MIB, 2, _2K, 16),
    _m60('1A', GIB, 1, _A, 8), _m60('1B', GIB, 4, _2K, 8),
    _m60('1Q', GIB, 2, _4K, 8), _m60('2A', 2 * GIB, 1, _A, 4),
    _m60('2B', 2 * GIB, 4, _2K, 4), _m60('2Q', 2 * GIB, 4, _4K, 4),
    _m60('4A', 4 * GIB, 1, _A, 2), _m60('4Q', 4 * GIB, 4, _4K, 2),
    _m60('8A', 8 * GIB, 1, _A, 1), _m60('8Q', 8 * GIB, 4, _4K, 1),
)

T4_TYPES = tuple(
    VgpuTypeSpec('GRID T4-%dQ' % gib, NVIDIA, gib * GIB, 4, 7680, 4320,
                 'nvidia_sriov', 16 // gib, multiple_per_vm=True,
                 identifier='0001;10de;1eb8;12a2;%dQ' % gib)
    for gib in (1, 2, 4, 8, 16))

GVTG_TYPES = tuple(
    VgpuTypeSpec('Intel GVT-g %dM' % mib, 'Intel Corporation', mib * MIB, 1,
                 1920, 1080, 'gvt_g', per_pgpu,
                 identifier='0001;8086;3e92;low_gm_sz=%d' % mib)
    for mib, per_pgpu in ((128, 7), (256, 3)))

MXGPU_TYPES = tuple(
    VgpuTypeSpec('FirePro S7150 MxGPU %dG' % gib, 'Advanced Micro Devices',
                 gib * GIB, 0, 0, 0, 'mxgpu', 8 // gib,
                 identifier='0001;1002;6929;%dG' % gib)
    for gib in (1, 2, 4))

MODELS = {
    'tesla-m60': GpuModel(
        '10de', '13f2', NVIDIA, 'GM204GL [Tesla M60]', '10de', '113a',
        'nvidia', M60_TYPES),
    'tesla-t4': GpuModel(
        '10de', '1eb8', NVIDIA, 'TU104GL [Tesla T4]', '10de', '12a2',
        'nvidia', T4_TYPES, class_id='0302', class_name='3D controller',
        sriov_totalvfs=16),
    'intel-uhd630': GpuModel(
        '8086', '3e92', 'Intel Corporation',
        'CoffeeLake-S GT2 [UHD Graphics 630]', '8086', '2212', 'i915',
        GVTG_TYPES, passthrough=False),
    'amd-s7150': GpuModel(
        '1002', '6929', 'Advanced Micro Devices, Inc. [AMD/ATI]',
        'Tonga XTGL [FirePro S7150]', '1002', '0335', 'gim', MXGPU_TYPES,
        class_id='0380', class_name='Display controller',
        sriov_totalvfs=16),
}


def supported_types(model):
    """The vGPU types a pGPU of ``model`` supports, passthrough last."""
    return model.types + ((PASSTHROUGH,) if model.passthrough else ())
