from shared.errors import InternalCommentForbidden

__all__ = ["InternalCommentForbidden"]
