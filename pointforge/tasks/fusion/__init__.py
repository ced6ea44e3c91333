"""Radar-camera 3D detection building blocks (CenterFusion family): nuScenes metrics, the
synthetic radar-camera scenes and the nuScenes reader. The network lives elsewhere."""
