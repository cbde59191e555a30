"""Balancer drivers: what starts and stops workers (``local`` processes, ``ec2`` spot instances).

Found through ``lwr.registry.BALANCER_DRIVERS`` like every other plugin family, so a host without
boto3 runs the local driver.
"""
