"""The objects users program against: nodes, links, groups, users, computers, comments and logs."""

from provstore.orm.links import Link, LinkType, LinkValidationError

__all__ = ['Link', 'LinkType', 'LinkValidationError']
