"""Networks. Import each from its module (``hmrkit.models.pose_prior``, ...): they are independent."""
