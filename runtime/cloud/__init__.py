"""Compute services on clouds, through apache-libcloud.

    services    the services file (TOML): which libcloud provider, region, credentials
    drivers     the NodeDriver of a service; libcloud's EC2 driver made to talk to EC2-compatible
                endpoints (moto, ...); the EC2 calls libcloud lacks (every page, states, tags)
    libcloud_loader  libcloud imported without paramiko
    template    a node-spec matched against a service's images, sizes and locations (pure)
    provider    `CloudProvider`: a service's nodes as a Provider (list, create, destroy)
    converge    converge on clouds: dry run, provision-only, failures, groups on several services

Nothing here is imported unless a run names a cloud service: the local provider keeps its
speed and libcloud is imported only when a driver is made.
"""
