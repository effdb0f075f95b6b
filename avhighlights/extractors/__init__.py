"""Feature extractors, registered by name in `EXTRACTORS`.

Every name is declared here with the class it lives in, without importing it: `EXTRACTORS.get(name)` (and so
`create_extractor`) imports only that extractor's module, so a weight-free extractor never loads torch;
`EXTRACTORS.load_all()` imports them all (listings, bridges, weight imports).
"""

from avhighlights.extractors.base import EXTRACTORS, Extractor, create_extractor

DECLARED = {
    "efficientat_mn04": "avhighlights.extractors.efficientat:EfficientATExtractor",
    "i3d": "avhighlights.extractors.i3d:I3DRgbFlowExtractor",
    "i3d_rgb": "avhighlights.extractors.i3d:I3DRgbExtractor",
    "inception_v3_pca": "avhighlights.extractors.inception_pca:InceptionPcaExtractor",
    "inception_v3_pca_yt8m": "avhighlights.extractors.inception_yt8m:InceptionYt8mExtractor",
    "inception_v3_pool": "avhighlights.extractors.inception_pca:InceptionPoolExtractor",
    "logmel": "avhighlights.extractors.logmel:LogMelExtractor",
    "loudness": "avhighlights.extractors.loudness:LoudnessExtractor",
    "mobilenet_v1_025": "avhighlights.extractors.mobilenet_v1:MobileNetV1Extractor",
    "panns_cnn14": "avhighlights.extractors.panns:PannsCnn14Extractor",
    "panns_cnn14_16k": "avhighlights.extractors.panns:PannsCnn14_16kExtractor",
    "panns_cnn14_2s": "avhighlights.extractors.panns_2s:PannsCnn14TwoSecondExtractor",
    "r3d18_tv": "avhighlights.extractors.r3d:R3D18TorchvisionExtractor",
    "r3d34": "avhighlights.extractors.r3d:R3D34Extractor",
    "swin": "avhighlights.extractors.swin:SwinExtractor",
}
EXTRACTORS.declare_all(DECLARED)

__all__ = ["EXTRACTORS", "Extractor", "create_extractor"]
