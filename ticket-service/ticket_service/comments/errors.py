from shared.errors import Forbidden


class InternalCommentForbidden(Forbidden):
    def __init__(self):
        super().__init__("Internal comments need the permission 'comments:internal'.")
