"""Reference data made by admins and pulled by every device: sectors, communities and
observation categories."""
