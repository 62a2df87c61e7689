"""The paper's networks and nothing that trains: the ResNet generator (G_A, G_B), the NRN
(``Pre``), the mask extractor (``H``), the PatchGANs, the edge operator; their builders and
initialisation (:mod:`~nerco.networks.build`), each network's no-autograd ``fast_forward``
with the layers it uses (:mod:`~nerco.networks.fast_path`), and the checkpoint files."""
