"""Comments on tickets, with internal notes that members never see."""
