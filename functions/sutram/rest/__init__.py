"""What every capability's routes share: the authenticated caller and the error body."""
