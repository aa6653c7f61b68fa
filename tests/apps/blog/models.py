"""The blog of Wagtail's tutorial (pages, a StreamField, rich text, tags through modelcluster), plus
subscribers keyed by django-hashid-field's HashidAutoField, whose reads are objects it refuses back."""

from django.db import models
from hashid_field import HashidAutoField
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey
from taggit.models import TaggedItemBase
from wagtail import blocks
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Page


class BlogIndexPage(Page):
    intro = RichTextField(blank=True)


class BlogPageTag(TaggedItemBase):
    content_object = ParentalKey("BlogPage", related_name="tagged_items", on_delete=models.CASCADE)


class BlogPage(Page):
    date = models.DateField("Post date")
    intro = models.CharField(max_length=250)
    body = StreamField(
        [("heading", blocks.CharBlock()), ("paragraph", blocks.RichTextBlock()), ("quote", blocks.BlockQuoteBlock())],
        blank=True,
    )
    tags = ClusterTaggableManager(through=BlogPageTag, blank=True)


class Subscriber(models.Model):
    id = HashidAutoField(primary_key=True)
    email = models.EmailField(unique=True)
    joined = models.DateTimeField(auto_now_add=True)


class Delivery(models.Model):
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    page = models.ForeignKey(BlogPage, on_delete=models.CASCADE, related_name="deliveries")
    sent_at = models.DateTimeField()
