from shared.errors import Forbidden


class InternalCommentForbidden(Forbidden):
    def __init__(self):
        super().__init__("Only agents, admins and owners may write internal comments.")
