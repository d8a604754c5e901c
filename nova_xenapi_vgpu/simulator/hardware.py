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
    # xapi_vgpu_type.ml, pt_when_vgpu: NVIDIA and Intel offer passthrough
    # beside their vGPU types; AMD only when it has no MxGPU types.
    passthrough_beside_vgpus: bool = True
    product_name: str = ''


PASSTHROUGH = VgpuTypeSpec('passthrough', '', 0, 0, 0, 0, 'passthrough', 1,
                           identifier='0001:passthrough')
NVIDIA = 'NVIDIA Corporation'


def _nvidia_id(pdev, psubdev, vdev, vsubdev):
    """xapi's Identifier.to_string for an NVIDIA type."""
    return '0001:nvidia,%04x,%04x,%04x,%04x' % (pdev, psubdev, vdev, vsubdev)


def _m60(name, fb, heads, res, per_pgpu):
    vdev = 0x13f2 + len(_M60_NAMES) - _M60_NAMES.index(name)
    return VgpuTypeSpec('GRID M60-%s' % name, NVIDIA, fb, heads, res[0],
                        res[1], 'nvidia', per_pgpu,
                        identifier=_nvidia_id(0x13f2, 0x113a, vdev, 0x1188))


_M60_NAMES = ('0B', '0Q', '1A', '1B', '1Q', '2A', '2B', '2Q', '4A', '4Q',
              '8A', '8Q')


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
                 identifier=_nvidia_id(0x1eb8, 0x12a2, 0x1e30 + gib, 0x12ba))
    for gib in (1, 2, 4, 8, 16))

GVTG_TYPES = tuple(
    VgpuTypeSpec('Intel GVT-g %dM' % mib, 'Intel Corporation', mib * MIB, 1,
                 1920, 1080, 'gvt_g', per_pgpu,
                 identifier='0001:gvt-g,3e92,%x,%x,4' % (mib, mib * 3))
    for mib, per_pgpu in ((128, 7), (256, 3)))

MXGPU_TYPES = tuple(
    VgpuTypeSpec('FirePro S7150 MxGPU %dG' % gib, 'Advanced Micro Devices',
                 gib * GIB, 0, 0, 0, 'mxgpu', 8 // gib,
                 identifier='0001:mxgpu,6929,%x' % (gib * GIB))
    for gib in (1, 2, 4))

MODELS = {
    'tesla-m60': GpuModel(
        '10de', '13f2', NVIDIA, 'GM204GL [Tesla M60]', '10de', '113a',
        'nvidia', M60_TYPES, product_name='Tesla M60'),
    'tesla-t4': GpuModel(
        '10de', '1eb8', NVIDIA, 'TU104GL [Tesla T4]', '10de', '12a2',
        'nvidia', T4_TYPES, class_id='0302', class_name='3D controller',
        sriov_totalvfs=16, product_name='Tesla T4'),
    'intel-uhd630': GpuModel(
        '8086', '3e92', 'Intel Corporation',
        'CoffeeLake-S GT2 [UHD Graphics 630]', '8086', '2212', 'i915',
        GVTG_TYPES),
    'amd-s7150': GpuModel(
        '1002', '6929', 'Advanced Micro Devices, Inc. [AMD/ATI]',
        'Tonga XTGL [FirePro S7150]', '1002', '0335', 'gim', MXGPU_TYPES,
        class_id='0380', class_name='Display controller',
        sriov_totalvfs=16, passthrough_beside_vgpus=False),
}


def supported_types(model, system_display=False):
    """The types a pGPU of ``model`` supports, in xapi's order.

    xapi_vgpu_type.ml (find_or_create_supported_types): a system display
    device never offers passthrough; passthrough comes first where a
    vendor offers it beside its vGPU types, and alone otherwise.
    """
    passthrough = () if system_display else (PASSTHROUGH,)
    if model.passthrough_beside_vgpus or not model.types:
        return passthrough + model.types
    return model.types


def is_sriov(spec):
    """Whether a type runs on a virtual function of its pGPU."""
    return spec.implementation in ('nvidia_sriov', 'mxgpu')


def model_of(vendor_id, device_id):
    """The GpuModel with these PCI ids."""
    return next(m for m in MODELS.values()
                if (m.vendor_id, m.device_id) == (vendor_id, device_id))
