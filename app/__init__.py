"""The hybrid demo site: the Twisted tutorial's delayed resource and its Starlette twin in one process."""
