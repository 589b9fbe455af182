"""Geometry shared by every stage: rotations (6D, axis-angle, matrices), cameras, crops, Procrustes.

Conventions: metres, radians, OpenCV camera frame (x right, y down, z forward), image pixels with
pixel centres at integer coordinates (as OpenCV and MediaPipe-times-size give them).
"""
