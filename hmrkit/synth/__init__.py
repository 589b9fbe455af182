"""Synthetic training images: Anny bodies and hands rendered with hmrkit's rasterizer over real
backgrounds with the people removed. One package serves AJAHR's A3D bodies and Lite I2L's hands."""
