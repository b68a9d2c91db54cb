"""localcloud: a local emulator of the Alibaba Cloud APIs acrsync calls (ACR, RAM, STS, FC, Tablestore).

It is a product part, not a test double: the real SDK clients talk to it over HTTP on 127.0.0.1, it
enforces the documented rules so a bad setup fails here as it would in the cloud, and it imports
nothing from ``acrsync`` so that it stays an independent judge of acrsync's behaviour.
It is never deployed to Function Compute.
"""
